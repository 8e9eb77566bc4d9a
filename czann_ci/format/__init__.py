"""The CZANN and legacy formats: the spec/ZEN table, schemas, metadata, archives. No TensorFlow here."""
