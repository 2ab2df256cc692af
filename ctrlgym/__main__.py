import sys

from ctrlgym.cli import main

sys.exit(main())
