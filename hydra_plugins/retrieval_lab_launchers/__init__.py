"""retrieval-lab's Hydra launcher plugins (Hydra finds launchers only inside the `hydra_plugins` namespace).

`hydra/launcher=ray` (conf/hydra/launcher/ray.yaml): the sweep's configurations as Ray tasks. The work is done in
`retrieval_lab.sweep.ray_launch`; this package only holds the class Hydra instantiates, and stays light because
Hydra imports every plugin module at every start.
"""
