from .seed_bisenetv1 import (ChannelAttentionRefinement, SeedBiSeNetV1,
                             SeedFeatureFusionModule)

__all__ = ['ChannelAttentionRefinement', 'SeedBiSeNetV1', 'SeedFeatureFusionModule']
