"""Running Redis itself: a real server process, its ACL users, the memory alarm."""
