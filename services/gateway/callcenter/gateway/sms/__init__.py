"""SMS conversations over Twilio Messaging: keying, carrier keywords, opt-outs, splitting, sending."""
