import sys

from monkeys.cli import main

sys.exit(main())
