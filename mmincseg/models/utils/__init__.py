from .novel_init import init_novel_classifier

__all__ = ['init_novel_classifier']
