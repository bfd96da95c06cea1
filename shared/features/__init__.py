"""Feature computation: plain functions over plain data, shared by the live features worker
and the trainer (one implementation). Every value at row t uses rows up to t only."""
