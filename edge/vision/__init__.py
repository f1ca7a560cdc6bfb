"""Finding, aligning and embedding faces: the ncnn models and the pipeline that runs them."""
