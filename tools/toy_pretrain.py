"""Make (or find) the cached toy pretrained backbone that ``mmincseg-toy://`` names.

Example::

    python tools/toy_pretrain.py                      # default recipe -> prints the cached path
    python tools/toy_pretrain.py --recipe '{"epochs": 1, "num_images": 64}'
    python tools/toy_pretrain.py --out r18.pth        # train now, write r18.pth (no cache)
"""
from mmincseg.apis.toy_pretrain import main

if __name__ == '__main__':
    main()
