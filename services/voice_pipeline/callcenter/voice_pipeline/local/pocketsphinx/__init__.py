"""CMU PocketSphinx speech-to-text (the en-US model ships in the ``pocketsphinx`` wheel)."""
