"""One module per embedder backend; `dense.embedders.LOADERS` maps the `embedder.backend` names to them."""
