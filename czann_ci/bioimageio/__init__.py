"""bioimage.io model packages, both ways (the optional ``czann-ci[bioimageio]`` extra): read as a conversion
source, and a .czann written as one (``export``).

- ``package.read_package(path) -> Package``: the description, read with bioimageio.spec (0.4 and 0.5);
- ``package_files``: the package's files (weights, test tensors), each inflated and sha256-checked in one pass;
- ``mapping.map_package(package, ...) -> Interface``: ZEN's InputShape, OutputShape, Classes, ...;
- ``compose`` / ``processing`` / ``ops``: the channels-last ONNX graph with pre/postprocessing baked in;
- ``weights``: the network as ONNX from the package's first convertible weights entry;
- ``test_tensors``: the package's own test tensors as the fidelity check;
- ``source``: ``bioimageio_metadata`` (plan time) and ``BioimageioSource`` (``export(plan)``);
- ``export``: ``export_bioimageio``, a .czann as a bioimage.io 0.5 package (``czann export``).

Nothing here imports bioimageio.spec, TensorFlow or torch at import time.
"""
