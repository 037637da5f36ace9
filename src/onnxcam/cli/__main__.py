"""`python -m onnxcam.cli`: the same as the `onnxcam` command."""

import sys

from onnxcam.cli.main import main

sys.exit(main())
