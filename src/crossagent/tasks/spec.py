"""The compact spec the benchmark suite is generated from.

Each template names a goal, its instruction and paraphrases, and a few kit variants (what
the player starts with and what is put near it). The generator crosses every variant with
world seeds; the expert then proves each candidate solvable (see generate.py).
Placeholders in `blocks`/`mobs`: offsets are drawn per task, at the variant's distance.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Variant:
    name: str
    difficulty: str
    inventory: dict[str, int] = field(default_factory=dict)
    blocks: tuple[tuple[str, int], ...] = ()  # (material, distance from spawn)
    mobs: tuple[tuple[str, int], ...] = ()  # (mob kind, distance from spawn)
    daylight: str | None = "day"
    clear_hostiles_within: int = 6


@dataclass(frozen=True)
class Template:
    name: str
    category: str
    success: dict
    instructions: tuple[str, str, str]  # the instruction and two paraphrases
    variants: tuple[Variant, ...]
    seeds_per_variant: int


def V(name: str, difficulty: str, **kwargs) -> Variant:
    return Variant(name, difficulty, **kwargs)


TABLE_NEAR = (("table", 2),)
STATIONS_NEAR = (("table", 2), ("furnace", 3))
WOOD_TOOLS = {"wood_pickaxe": 1}
STONE_TOOLS = {"wood_pickaxe": 1, "stone_pickaxe": 1}

EMBODIED = (
    Template("collect_wood", "embodied", {"kind": "gain", "item": "wood", "amount": 1},
             ("Collect a piece of wood.", "Chop a tree to get wood.", "Get one wood from a tree."),
             (V("near", "easy", blocks=(("tree", 2),)), V("natural", "easy"),
              V("far", "medium", blocks=(("tree", 7),))), 10),
    Template("collect_wood_3", "embodied", {"kind": "gain", "item": "wood", "amount": 3},
             ("Collect three pieces of wood.", "Chop trees until you have 3 more wood.", "Gather 3 wood."),
             (V("natural", "medium"),), 16),
    Template("collect_sapling", "embodied", {"kind": "gain", "item": "sapling", "amount": 1},
             ("Collect a sapling.", "Search the grass for a sapling.", "Pick up a sapling from the grass."),
             (V("natural", "easy"),), 16),
    Template("drink_water", "embodied", {"kind": "gain", "item": "drink", "amount": 1},
             ("Drink water.", "Quench your thirst at the water.", "Go and drink some water."),
             (V("pond_near", "easy", inventory={"drink": 3}, blocks=(("water", 3),)),
              V("pond_far", "medium", inventory={"drink": 3}, blocks=(("water", 8),)),
              V("natural", "medium", inventory={"drink": 3})), 10),
    Template("collect_stone", "embodied", {"kind": "gain", "item": "stone", "amount": 1},
             ("Mine a stone.", "Collect one stone with your pickaxe.", "Get a piece of stone."),
             (V("near", "easy", inventory=WOOD_TOOLS, blocks=(("stone", 3),)),
              V("natural", "medium", inventory=WOOD_TOOLS)), 10),
    Template("collect_coal", "embodied", {"kind": "gain", "item": "coal", "amount": 1},
             ("Mine coal.", "Collect a piece of coal.", "Dig up some coal with your pickaxe."),
             (V("near", "easy", inventory=WOOD_TOOLS, blocks=(("coal", 3),)),
              V("far", "medium", inventory=WOOD_TOOLS, blocks=(("coal", 8),))), 10),
    Template("collect_iron", "embodied", {"kind": "gain", "item": "iron", "amount": 1},
             ("Mine iron.", "Collect a piece of iron with the stone pickaxe.", "Dig up iron ore."),
             (V("near", "easy", inventory=STONE_TOOLS, blocks=(("iron", 3),)),
              V("far", "medium", inventory=STONE_TOOLS, blocks=(("iron", 8),))), 10),
    Template("collect_diamond", "embodied", {"kind": "gain", "item": "diamond", "amount": 1},
             ("Mine a diamond.", "Collect a diamond with the iron pickaxe.", "Dig up a diamond."),
             (V("near", "medium", inventory={"iron_pickaxe": 1}, blocks=(("diamond", 4),)),
              V("far", "hard", inventory={"iron_pickaxe": 1}, blocks=(("diamond", 9),))), 10),
    Template("place_stone", "embodied", {"kind": "achieve", "name": "place_stone"},
             ("Place a stone.", "Put a stone block down.", "Build with one stone."),
             (V("kit", "easy", inventory={"stone": 1}),
              V("mine_first", "medium", inventory=WOOD_TOOLS, blocks=(("stone", 3),))), 10),
    Template("place_plant", "embodied", {"kind": "achieve", "name": "place_plant"},
             ("Plant a sapling.", "Put a sapling in the grass.", "Plant something on the grass."),
             (V("kit", "easy", inventory={"sapling": 1}), V("find_sapling", "medium")), 10),
    Template("eat_cow", "embodied", {"kind": "achieve", "name": "eat_cow"},
             ("Eat a cow.", "Hunt a cow and eat it.", "Find a cow and eat it."),
             (V("near", "easy", inventory={"food": 4}, mobs=(("cow", 3),)),
              V("far", "medium", inventory={"food": 4}, mobs=(("cow", 8),))), 10),
    Template("reach_water", "embodied", {"kind": "reach", "material": "water"},
             ("Walk to the water.", "Go and stand next to the water.", "Find the lake and go to it."),
             (V("pond", "easy", blocks=(("water", 7),)), V("natural", "medium")), 10),
    Template("reach_diamond", "embodied", {"kind": "reach", "material": "diamond"},
             ("Walk to the diamond.", "Go and stand next to the diamond.", "Find the diamond and go to it."),
             (V("near", "easy", blocks=(("diamond", 5),)), V("far", "medium", blocks=(("diamond", 10),))), 10),
    Template("reach_table", "embodied", {"kind": "reach", "material": "table"},
             ("Walk to the crafting table.", "Go and stand next to the table.", "Find the table and go to it."),
             (V("near", "easy", blocks=(("table", 5),)), V("far", "medium", blocks=(("table", 10),))), 10),
    Template("sleep", "embodied", {"kind": "achieve", "name": "wake_up"},
             ("Sleep until you are rested.", "Take a nap until your energy is full.", "Go to sleep and wake up rested."),
             (V("tired", "easy", inventory={"energy": 5}, clear_hostiles_within=12),
              V("exhausted", "medium", inventory={"energy": 2}, clear_hostiles_within=12)), 10),
)

CRAFT = (
    Template("place_table", "craft", {"kind": "achieve", "name": "place_table"},
             ("Place a crafting table.", "Build a table.", "Set up a crafting table."),
             (V("kit", "easy", inventory={"wood": 9}), V("half_kit", "medium", inventory={"wood": 1}),
              V("from_scratch", "medium")), 11),
    Template("make_wood_pickaxe", "craft", {"kind": "achieve", "name": "make_wood_pickaxe"},
             ("Make a wood pickaxe.", "Craft a wooden pickaxe.", "Build a pickaxe out of wood."),
             (V("at_table", "easy", inventory={"wood": 1}, blocks=TABLE_NEAR),
              V("wood_only", "medium", inventory={"wood": 5}), V("from_scratch", "hard")), 11),
    Template("make_wood_sword", "craft", {"kind": "achieve", "name": "make_wood_sword"},
             ("Make a wood sword.", "Craft a wooden sword.", "Build a sword out of wood."),
             (V("at_table", "easy", inventory={"wood": 1}, blocks=TABLE_NEAR),
              V("wood_only", "medium", inventory={"wood": 5}), V("from_scratch", "hard")), 11),
    Template("make_stone_pickaxe", "craft", {"kind": "achieve", "name": "make_stone_pickaxe"},
             ("Make a stone pickaxe.", "Craft a pickaxe out of stone.", "Build a stone pickaxe."),
             (V("kit", "easy", inventory={"wood": 1, "stone": 1}, blocks=TABLE_NEAR),
              V("has_pickaxe", "medium", inventory={"wood_pickaxe": 1, "wood": 1}, blocks=TABLE_NEAR),
              V("from_scratch", "hard")), 11),
    Template("make_stone_sword", "craft", {"kind": "achieve", "name": "make_stone_sword"},
             ("Make a stone sword.", "Craft a sword out of stone.", "Build a stone sword."),
             (V("kit", "easy", inventory={"wood": 1, "stone": 1}, blocks=TABLE_NEAR),
              V("has_pickaxe", "medium", inventory={"wood_pickaxe": 1, "wood": 1}, blocks=TABLE_NEAR),
              V("from_scratch", "hard")), 11),
    Template("place_furnace", "craft", {"kind": "achieve", "name": "place_furnace"},
             ("Place a furnace.", "Build a furnace.", "Set up a furnace next to a table."),
             (V("kit", "easy", inventory={"stone": 9}, blocks=TABLE_NEAR),
              V("has_pickaxe", "medium", inventory=WOOD_TOOLS, blocks=TABLE_NEAR),
              V("from_scratch", "hard")), 11),
    Template("make_iron_pickaxe", "craft", {"kind": "achieve", "name": "make_iron_pickaxe"},
             ("Make an iron pickaxe.", "Craft a pickaxe out of iron.", "Build an iron pickaxe."),
             (V("kit", "easy", inventory={"wood": 1, "coal": 1, "iron": 1}, blocks=STATIONS_NEAR),
              V("has_stone_pickaxe", "medium", inventory={**STONE_TOOLS, "wood": 2},
                blocks=(*TABLE_NEAR, ("iron", 4), ("coal", 4))),
              V("from_scratch", "hard", blocks=(("iron", 6),))), 11),
    Template("make_iron_sword", "craft", {"kind": "achieve", "name": "make_iron_sword"},
             ("Make an iron sword.", "Craft a sword out of iron.", "Build an iron sword."),
             (V("kit", "easy", inventory={"wood": 1, "coal": 1, "iron": 1}, blocks=STATIONS_NEAR),
              V("has_stone_pickaxe", "medium", inventory={**STONE_TOOLS, "wood": 2},
                blocks=(*TABLE_NEAR, ("iron", 4), ("coal", 4))),
              V("from_scratch", "hard", blocks=(("iron", 6),))), 11),
    Template("wood_tools", "craft",
             {"kind": "all", "of": [{"kind": "achieve", "name": "make_wood_pickaxe"},
                                    {"kind": "achieve", "name": "make_wood_sword"}]},
             ("Make a wood pickaxe and a wood sword.", "Craft both wooden tools.", "Build a wooden pickaxe and sword."),
             (V("wood_only", "medium", inventory={"wood": 4}), V("from_scratch", "hard")), 9),
    Template("stone_tools", "craft",
             {"kind": "all", "of": [{"kind": "achieve", "name": "make_stone_pickaxe"},
                                    {"kind": "achieve", "name": "make_stone_sword"}]},
             ("Make a stone pickaxe and a stone sword.", "Craft both stone tools.", "Build a stone pickaxe and sword."),
             (V("has_pickaxe", "medium", inventory={"wood_pickaxe": 1, "wood": 2}, blocks=TABLE_NEAR),
              V("from_scratch", "hard")), 9),
)

ZOMBIE_FIGHTS = (
    V("bare_hands", "medium", mobs=(("zombie", 4),), daylight="dusk"),
    V("wood_sword", "easy", inventory={"wood_sword": 1}, mobs=(("zombie", 4),), daylight="dusk"),
    V("stone_sword", "easy", inventory={"stone_sword": 1}, mobs=(("zombie", 5),), daylight="dusk"),
    V("night", "medium", inventory={"wood_sword": 1}, mobs=(("zombie", 4),), daylight="night"),
)
TWO_ZOMBIES = (("zombie", 4), ("zombie", 6))
THREE_ZOMBIES = (("zombie", 4), ("zombie", 6), ("zombie", 8))
COMBAT = (
    Template("defeat_zombie", "combat", {"kind": "achieve", "name": "defeat_zombie"},
             ("Defeat a zombie.", "Kill the zombie.", "Fight the zombie until it is gone."), ZOMBIE_FIGHTS, 16),
    Template("defeat_two_zombies", "combat", {"kind": "achieve", "name": "defeat_zombie", "count": 2},
             ("Defeat two zombies.", "Kill both zombies.", "Fight off the two zombies."),
             (V("wood_sword", "medium", inventory={"wood_sword": 1}, mobs=TWO_ZOMBIES, daylight="dusk"),
              V("iron_sword", "easy", inventory={"iron_sword": 1}, mobs=TWO_ZOMBIES, daylight="dusk"),
              V("bare_hands", "hard", mobs=(("zombie", 4), ("zombie", 7)), daylight="dusk")), 16),
    Template("defeat_three_zombies", "combat", {"kind": "achieve", "name": "defeat_zombie", "count": 3},
             ("Defeat three zombies.", "Kill all three zombies.", "Fight off the three zombies."),
             (V("stone_sword", "hard", inventory={"stone_sword": 1}, mobs=THREE_ZOMBIES, daylight="dusk"),
              V("night", "hard", inventory={"iron_sword": 1}, mobs=THREE_ZOMBIES, daylight="night")), 16),
    Template("defeat_skeleton", "combat", {"kind": "achieve", "name": "defeat_skeleton"},
             ("Defeat a skeleton.", "Kill the skeleton.", "Fight the skeleton until it is gone."),
             (V("bare_hands", "medium", mobs=(("skeleton", 4),)),
              V("wood_sword", "easy", inventory={"wood_sword": 1}, mobs=(("skeleton", 4),)),
              V("far", "medium", inventory={"stone_sword": 1}, mobs=(("skeleton", 8),))), 16),
    Template("defeat_zombie_and_skeleton", "combat",
             {"kind": "all", "of": [{"kind": "achieve", "name": "defeat_zombie"},
                                    {"kind": "achieve", "name": "defeat_skeleton"}]},
             ("Defeat a zombie and a skeleton.", "Kill both monsters.", "Fight off the zombie and the skeleton."),
             (V("stone_sword", "medium", inventory={"stone_sword": 1}, mobs=(("zombie", 4), ("skeleton", 6)),
                daylight="dusk"),
              V("bare_hands", "hard", mobs=(("zombie", 4), ("skeleton", 6)), daylight="dusk")), 16),
    Template("survive_night", "combat", {"kind": "survive", "steps": 150},
             ("Survive the night.", "Stay alive until the night is over.", "Last through the night without dying."),
             (V("iron_sword", "medium", inventory={"iron_sword": 1}, daylight="night", clear_hostiles_within=0),
              V("stone_sword", "hard", inventory={"stone_sword": 1}, daylight="night", mobs=(("zombie", 6),),
                clear_hostiles_within=0)), 16),
    Template("hunt_cow", "combat", {"kind": "achieve", "name": "eat_cow", "count": 2},
             ("Hunt two cows.", "Kill and eat two cows.", "Defeat two cows for food."),
             (V("sword", "easy", inventory={"wood_sword": 1, "food": 2}, mobs=(("cow", 4), ("cow", 6))),
              V("bare_hands", "medium", inventory={"food": 2}, mobs=(("cow", 4), ("cow", 7)))), 16),
)

TEMPLATES: tuple[Template, ...] = EMBODIED + CRAFT + COMBAT
WORLD_SEEDS = tuple(range(48))
MINI_PER_CATEGORY = {"easy": 3, "medium": 4, "hard": 3}
