"""A demo relying party: its own users and passwords, then hwotp as the second factor, in a browser."""
