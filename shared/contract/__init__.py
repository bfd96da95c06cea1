"""The contract (pure): the messages on the bus, their wire codec, the signal blocks and the
output document, with the limits every block keeps."""
