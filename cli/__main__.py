import sys

from prift import main

sys.exit(main())
