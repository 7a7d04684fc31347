"""Code generation: checked IR + load plan -> a plain Python module that imports only runtime."""

from compiler.codegen.generate import COMPILER_VERSION, GeneratedModule, generate_module

__all__ = ["COMPILER_VERSION", "GeneratedModule", "generate_module"]
