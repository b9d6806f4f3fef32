"""Minecraft action codecs compatible with OpenHA, JARVIS-VLA and VPT.

One module per format (shared/spec/minecraft-formats.md, docs/minecraft.md):
  profile           format profiles: openha (the released bytes) and crossagent (canonical)
  env_action        the simulator's primitive action dict
  text_action       `Action: move(dx, dy) and press(...) and click(...)`
  camera_quantizer  mu-law camera bins
  raw_tokens        VPT-style reserved-token actions
  motion_labeller   `Motion:` phrases labelled from env actions
  grounding         `Grounding:` verb, label and point
  coa               a Chain-of-Action reply split into its levels
  vpt               VPT contractor recordings (jsonl) to env actions, and back
  prompts           chat messages of the Minecraft SFT examples
"""
