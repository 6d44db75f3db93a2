import sys

from lincir.cli import main

sys.exit(main())
