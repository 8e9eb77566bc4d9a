"""PyTorch modules, TorchScript files and whole-module pickles to ONNX (the optional ``torch`` extra)."""
