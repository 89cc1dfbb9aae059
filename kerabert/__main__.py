import sys

from kerabert.cli import main

sys.exit(main())
