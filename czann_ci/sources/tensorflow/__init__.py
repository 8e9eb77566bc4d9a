"""Keras 3 models and TensorFlow SavedModels to ONNX: both are traced (keras_trace, savedmodel_trace,
trace) and run through tf2onnx (tf2onnx_convert, lowering, weights) by export; the plan's transforms are
Keras layers here (keras_wrap, keras_layers). TensorFlow is imported only when a conversion needs it."""
