"""The tests' data-loader options, defined once: every loader in the main process.

(``num_workers=0`` alone turns ``persistent_workers`` off in resolved configs; the explicit
``False`` also serves configs built without the resolver.) Importable from any test: pytest puts
``tests/`` on ``sys.path`` for its conftest.
"""
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
#: ``cfg_options`` form: {'train_dataloader.num_workers': 0, ...}
NO_WORKERS = {f'{loader}.{key}': value for loader in LOADERS
              for key, value in (('num_workers', 0), ('persistent_workers', False))}
#: ``--cfg-options`` form: ['train_dataloader.num_workers=0', ...]
NO_WORKERS_CLI = [f'{key}={value}' for key, value in NO_WORKERS.items()]
