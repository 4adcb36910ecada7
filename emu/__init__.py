# Choose the unicorn core (patched if built, else stock) before anything imports the binding.
from emu import unicorn_core as _unicorn_core

_unicorn_core.select()
