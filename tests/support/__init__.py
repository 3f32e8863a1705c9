"""Test helpers shared by the test packages (the test-server launchers live in
``testservers/``, shared with ``bench/``)."""
