"""`bentomesh demo`: three example models through the whole mesh on this machine."""
