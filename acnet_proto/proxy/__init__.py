"""The supervised proxy's pure half: its policies and its audit records."""
