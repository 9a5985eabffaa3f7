"""What every reconnecting subscription shares, with no I/O: the policy, the gap, the decisions."""
