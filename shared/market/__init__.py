"""The market's rules (pure): NSE sessions and expiries, event time, bar and chain
validation, what an engine sees of the chain, participant-wise OI records."""
