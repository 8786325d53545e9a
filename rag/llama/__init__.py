"""llama.cpp on this CPU: which instruction sets to build for (``cpu``), a real generation in a
child process that proves a build runs (``probe``), and ``python -m rag.llama.build``, which
installs llama-cpp-python built for this CPU (run by scripts/setup.sh)."""
