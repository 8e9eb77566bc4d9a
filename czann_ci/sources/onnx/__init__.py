"""ONNX models from any framework to the single-file, channels-last model ZEN reads (prepare: layout,
interface, opset, external data), and the plan's transforms as ONNX edits (apply_transforms, edit) for
every source that cannot apply them itself. No TensorFlow."""
