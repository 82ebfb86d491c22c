import sys

from gateway.docs.reference import main

sys.exit(main(sys.argv[1:]))
