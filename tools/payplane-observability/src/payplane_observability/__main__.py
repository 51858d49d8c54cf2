import sys

from payplane_observability.generate import main

sys.exit(main())
