"""eSpeak NG text-to-speech (the ``espeak-ng`` program, Debian package ``espeak-ng``)."""
