"""The Redis bus (I/O): stream and key names, publishing, the consumer-group worker loop and
the engine base on it, replies, retention, the run epoch and a service's lifecycle."""
