import sys

from trashure.cli import main

sys.exit(main())
