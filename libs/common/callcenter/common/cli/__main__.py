import sys

from callcenter.common.cli import main

sys.exit(main())
