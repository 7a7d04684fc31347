"""What generated modules import, and nothing of the compiler.

Generated code imports only names listed in ``runtime.__all__`` (a test enforces it), so a compiled
mapping runs with the runtime alone installed.
"""

__all__: list[str] = []
