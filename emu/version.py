"""What gomemu is and which Go it models (for --version and every --json document)."""

from importlib import metadata

GO_VERSION = "go1.27.3"          # the runtime whose layouts, constants and code gomemu follows
GO_PLATFORM = "linux/amd64"

try:
    GOMEMU_VERSION = metadata.version("gomemu")
except metadata.PackageNotFoundError:      # run from a checkout that is not installed
    GOMEMU_VERSION = "0+unknown"
