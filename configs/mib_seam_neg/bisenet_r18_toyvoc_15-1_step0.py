# MiB-S on toy VOC 15-1 with negatives for each one-class step's SEAM: the step-(t-1) model's
# confident old-class pixels (p >= 0.9) of the step's images are scored as images without the
# new class (incremental.seam.negatives; mmincseg/apis/config.py, seam_negatives). Otherwise as
# configs/mib_seam/bisenet_r18_toyvoc_15-1_step0.py.
_base_ = ['../mib_seam/bisenet_r18_toyvoc_15-1_step0.py']
incremental = dict(seam=dict(negatives=dict(threshold=0.9, weight=1.0)))
