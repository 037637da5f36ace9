"""`python -m onnxcam`: the same as the `onnxcam` command."""

import sys

from onnxcam.cli.dispatch import main

sys.exit(main())
