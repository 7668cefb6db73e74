import sys

from ssdfa.cli import main

sys.exit(main())
