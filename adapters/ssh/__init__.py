"""SSH to ACNET hosts: commands, port forwards, SFTP and acl, through jump hosts."""
