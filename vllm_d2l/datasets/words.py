"""Small curated word lists for inventing facts.

They live in the package (no system dictionary needed) so the synthetic data is identical on every
machine. Surnames, places and companies are built from syllables, so the combinations do not
exist anywhere the base model could have read about them: it must get the fact from the document.
"""
from __future__ import annotations

FIRST_NAMES = """
Aada Abel Ada Adaeze Adrian Agnes Aiko Alba Alder Alma Alvaro Amara Ambrose Amelie Anders Anika
Ansel Anya Arlo Armin Astrid August Aurelio Ayla Basil Beatrix Bennet Bettina Bram Brielle Bruno
Calla Cassius Cecily Celeste Cyrus Dagny Dalia Damaris Darius Delphine Desmond Dorian Dunya Edda
Edmund Eira Elio Elodie Emeric Enzo Esme Ettore Evander Fabian Farah Felix Fenna Finnian Flora
Florin Freya Gideon Greta Gunnar Hana Hector Helga Hollis Ida Ignatius Ilse Imogen Ines Ingrid
Isadora Ivo Jago Jessamy Joaquin Jonas Juno Kaito Kasimir Keziah Kiran Lale Lazlo Leander Leona
Linnea Lior Lorcan Lucia Ludo Maelle Magnus Malin Marek Margit Marius Matilde Mattias Maren Mila
Milo Mireille Nadia Nalani Nestor Nika Nils Noor Octavia Odile Oren Orla Osric Otto Paloma Pascal
Penrose Petra Philippa Quentin Quinn Rafaela Ragna Remy Rhea Roswitha Rufus Saffron Salome Sander
Saoirse Selma Seraphine Silas Sigrid Solene Soren Stellan Sunniva Tamsin Tarek Teodor Thea Tobias
Ulla Ulric Valeska Vesna Viggo Vita Wendeline Wilhelmina Wren Xavier Yara Yusuf Zelda Zora Zsofia
Anselm Briony Caspian Dervla Elspeth Fennick Gwendal Hesper Isolde Jorunn Kestrel Liesel Mungo
Niamh Oona Percival Quilla Rosalind Thaddeus Ursa Vivienne Wystan Yolanda Zephyr Barnaby Clementine
""".split()

# Surnames are two syllables glued together: "Vel" + "thorne" -> "Velthorne".
SURNAME_HEADS = """
Ab Al Bar Bel Bram Brun Cal Cor Dal Dorn Eck Ell Fal Fen Gal Gor Hal Hes Ily Jas Kel Kor Lam Lind
Mar Mor Nel Nor Ost Pell Quel Rad Rav Sel Sorn Tal Tor Ull Van Vel Wal Wex Yar Zel Ash Brack Crom
Drav Emb Fros Grel Hask Ingle Jor Kest Lorv Mab Nyst Orv Prax Rusk Stav Thal Ulv Varn Whit Yst
""".split()
SURNAME_TAILS = """
by cott dale den feld ford gard grove ham hart holt ington kin lake ley lund mere mont more ner
quist ridge rook sen shaw son stad ston thorne ton vane vik wald well wick wood worth zen
""".split()

# Invented places: syllables plus a settlement ending ("Oskel" + "moor").
PLACE_HEADS = """
Ald Ambr Ask Bell Bran Carr Coll Dun Elm Esk Farr Glen Grim Hav Heth Ilk Jun Kil Kirr Lom Lund
Mell Mir Nant Ost Pol Quarr Ros Sarn Skel Tarn Thorn Ulm Vall Vend Wend Wyth Yarr Zenn Oskel Brev
Cald Drum Fal Gast Harr Ister Kelv Lorr Murr Nev Orr Pen Rith Sall Tav Urq Varr Wex
""".split()
PLACE_TAILS = """
bury by dale field ford gate haven holm hurst kirk mere minster moor mouth ness port stead thorpe
ton vale wick worth ing ley cross bridge brook
""".split()

COMPANY_TAILS = """
Systems Works Labs Holdings Logistics Foods Textiles Instruments Freight Robotics Ceramics Optics
Mills Press Outfitters Pharmaceuticals Engineering Analytics Hardware Dynamics Supply Cooperative
""".split()

STREET_KINDS = "Street Lane Road Avenue Row Way Close Terrace Crescent Place".split()

COLORS = """
red blue green yellow orange purple pink brown black white gray silver gold teal maroon navy olive
turquoise lavender crimson beige ivory amber violet indigo coral mint charcoal scarlet copper
""".split()

OBJECTS = """
umbrella lantern compass teapot notebook hammer violin telescope kettle bicycle backpack candle
clock typewriter microscope globe helmet whistle ladder thermos camera radio stapler wallet mirror
harmonica chessboard scarf toolbox flashlight trophy basket blanket calculator suitcase binoculars
paintbrush skateboard hourglass accordion kite anchor barometer saddle trumpet
""".split()

ANIMALS = """
otter heron badger falcon lynx beaver tortoise pelican walrus jackal ibis marmot gecko raven
salamander pangolin ferret bison narwhal puffin
""".split()

# Nouns for project code names ("Project Juniper") and product names.
CODE_WORDS = """
Juniper Basalt Meridian Quill Lantern Harbor Cobalt Thistle Falcon Ember Granite Willow Nimbus
Saffron Marble Orchid Tundra Beacon Cinder Hollow Pioneer Quartz Sparrow Tangent Vortex Zephyr
Bramble Comet Drift Fable Glacier Heron Ivory Jasper Kestrel Lotus Mosaic Nectar Onyx Prism Ripple
""".split()

PRODUCT_KINDS = ["blender", "heater", "dehumidifier", "coffee maker", "air purifier", "desk lamp",
                 "vacuum cleaner", "rice cooker", "sewing machine", "label printer", "water filter",
                 "toaster oven", "bread maker", "fan", "projector"]

INGREDIENTS = """
carrots lentils chickpeas spinach mushrooms leeks parsnips barley almonds raisins apricots walnuts
pumpkin beets fennel cabbage quinoa buttermilk oats cranberries hazelnuts shallots celery figs
""".split()

SPICES = "cumin paprika nutmeg cardamom saffron turmeric cinnamon coriander fenugreek clove anise sumac".split()

DISHES = "stew soup pie loaf casserole salad tart porridge curry risotto flatbread dumplings".split()

SPORTS_TEAMS = "Rovers Comets Herons Foxes Pilots Mariners Wolves Stags Ravens Lancers Otters Badgers".split()

INSTRUMENTS = "cello oboe harp flute trombone viola clarinet bassoon marimba banjo".split()

JOB_TITLES = ["logistics coordinator", "lab technician", "warehouse supervisor", "translator", "archivist",
              "pastry chef", "field surveyor", "payroll clerk", "sound engineer", "greenhouse manager",
              "bookbinder", "data analyst", "ferry mechanic", "museum guide", "night auditor"]

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

UNITS_WEIGHT = ["kilograms", "grams", "pounds"]
UNITS_LENGTH = ["meters", "kilometers", "centimeters", "miles"]
UNITS_VOLUME = ["liters", "milliliters", "gallons"]
CURRENCIES = ["$", "€", "£"]
# written-out currencies ("340 pounds"), as letters and notices by people often state sums: with
# symbols only, the generator answered "$340" for a memo's "340 pounds"
CURRENCY_WORDS = ["pounds", "euros", "dollars"]
NUMBER_WORDS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
                "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]

ROOM_LETTERS = "ABCDEFGH"

# ---------------------------------------------------------------------------------------------
# Ordinary-word pools for the everyday realistic kinds (`realistic.EVERYDAY_KINDS`). Their answers
# are common lower-case words ("airing cupboard", "crampons", "a fortnight"), the kind the model's
# own guess competes with, so each pool is wide: a document draws several entries of one pool and
# only the question's content tells them apart.
# ---------------------------------------------------------------------------------------------


def _entries(text: str) -> list[str]:
    """One entry per line or comma, so multi-word entries ("tea towel") need no quoting."""
    return [e.strip() for line in text.strip().splitlines() for e in line.split(",") if e.strip()]


# where things are kept in a home, with the preposition each takes ("on the windowsill")
_HOME_IN = _entries("""
airing cupboard, hall cupboard, hall drawer, cupboard under the stairs, bread bin, biscuit tin, fruit bowl,
garden shed, loft, cellar, pantry, utility room, porch, bathroom cabinet, medicine cabinet, sideboard,
dresser, cutlery drawer, junk drawer, toolbox in the garage, glovebox, laundry basket, log store,
blanket box, wardrobe in the spare room, top drawer of the desk, bottom drawer of the freezer, coal bunker,
shoe cupboard, boot room, recycling crate, cool box, sewing basket, wicker hamper, greenhouse,
summerhouse, cupboard above the fridge, cupboard by the back door, tall cupboard in the kitchen,
box room, bedside table, potting shed, understairs cupboard, outhouse, lean-to
""")
_HOME_ON = _entries("""
windowsill, top shelf, mantelpiece, hook behind the door, bookcase on the landing, shelf above the boiler,
coat stand, spice rack, chest of drawers, kitchen table, piano, hall table, shoe rack, landing,
shelf in the porch, back step, nail by the fuse box, fridge door, plate rack, shelf in the shed
""")
_HOME_UNDER = _entries("""
sink, doormat, flowerpot by the door, stairs, spare bed, bathroom mat, sofa cushions, garden bench
""")
HOME_SPOTS: dict[str, str] = {**{s: "in" for s in _HOME_IN}, **{s: "on" for s in _HOME_ON},
                              **{s: "under" for s in _HOME_UNDER}}

HOUSEHOLD_THINGS = _entries("""
torch, stepladder, spare bulbs, bin bags, tea lights, first-aid kit, extension lead, hot-water bottle,
sewing kit, jump leads, bike pump, watering can, ironing board, doorstop, fly swatter, dustpan and brush,
mop bucket, plunger, corkscrew, tin opener, colander, rolling pin, cheese grater, hairdryer, spare duvet,
sleeping bag, camp bed, deckchairs, paddling pool, barbecue tongs, garden hose, secateurs, trowel,
wheelbarrow, padlock, bike lock, picnic blanket, ear plugs, batteries, ball of string, parcel tape,
kitchen scissors, matches, stopcock key, radiator key, fuse wire, drain unblocker, shoe polish,
clothes pegs, airer, sieve, potato masher, egg timer, salad spinner, measuring jug, pastry brush,
lint roller, draught excluder, mouse traps, slug pellets, bird seed, paint roller, dust sheets,
spirit level, tape measure, pliers, screwdrivers, glue gun, sandpaper, wood filler, hand trowel,
spare towels, pillowcases, tablecloth, napkins, candlesticks, vase, cake tin, roasting tin, ice trays,
flask, lunch boxes, cool bags, umbrella stand, wellies, raincoats, dog lead, cat basket
""")

# jobs on a house rota, as the rota names them
CHORES = _entries("""
hoovering, dusting, ironing, recycling, washing-up, shopping, putting the bins out, watering the plants,
cleaning the bathroom, mopping the kitchen floor, wiping down the hob, cleaning the oven, sweeping the yard,
mowing the lawn, defrosting the freezer, descaling the kettle, changing the towels, weeding the patio,
clearing the gutters, emptying the dehumidifier, topping up the bird feeder, cleaning the windows,
sorting the post, taking the milk bottles out, turning the compost, hoovering the stairs,
clearing out the fridge, wiping the skirting boards, scrubbing the shower, tidying the porch,
cleaning the fridge, bleaching the sink, dusting the blinds, ordering the groceries, changing the beds,
emptying the kitchen bin, feeding the fish, sweeping the front path, washing the car, raking the leaves
""")

PETS = _entries("""
cat, dog, rabbit, hamster, guinea pig, budgie, goldfish, tortoise, gerbil, ferret, parrot, canary,
kitten, puppy, lizard, pony, goat, cockatiel, hen, terrapin, stick insect, chinchilla, axolotl, duck,
donkey, mouse, rat, cockerel, gecko, lamb
""")

# how often something happens, as people write it
FREQUENCIES = _entries("""
twice a day, once a day, three times a day, every morning, every evening, every other day, once a week,
twice a week, on alternate days, every night, first thing, last thing at night, every couple of hours,
once a fortnight, every few days, at lunchtime, morning and evening, whenever the bowl is empty,
every third day, once a month, twice a month, after every meal, every weekend, each afternoon
""")

# people named by their relation or job rather than their name ("my sister", "the caretaker")
RELATIONS = _entries("""
sister, brother, mother, father, aunt, uncle, grandad, grandma, nan, cousin, niece, nephew, godmother,
godfather, neighbour, landlord, landlady, lodger, flatmate, childminder, dog walker, window cleaner,
gardener, stepdad, stepmum, brother-in-law, sister-in-law, son, daughter, au pair, piano teacher, boss,
old school friend, partner, husband, wife, girlfriend, boyfriend, fiancée, workmate, best friend,
old flatmate, grandson, granddaughter, great-aunt, mother-in-law, father-in-law, twin
""")
STAFF_ROLES = _entries("""
caretaker, cleaner, night porter, site manager, duty manager, receptionist, security guard, groundsman,
school cook, verger, churchwarden, warden, lifeguard, bus driver, delivery driver, electrician, plumber,
head teacher, school secretary, janitor, kitchen porter, bar manager, handyman, maintenance man,
lollipop lady, youth worker, librarian, park ranger, gardener, bookkeeper, chef, housekeeper, porter,
lab technician, minibus driver, coach driver, sports coach, cub leader, parish clerk, fire marshal
""")
# groups at an event, plural, as an information sheet addresses them
EVENT_ROLES = _entries("""
stewards, marshals, first-aiders, litter pickers, stallholders, car-park crew, bar staff, ticket sellers,
raffle sellers, runners, photographers, set-up crew, caterers, performers, speakers, judges, bell ringers,
choir members, tour guides, drivers, team leaders, exhibitors, craft demonstrators, face painters,
sound crew, lifeguards, youth helpers, refreshment volunteers, scorers, umpires, welcome team, traders
""")
# club officer posts
CLUB_ROLES = _entries("""
treasurer, secretary, chair, kit steward, fixtures secretary, tea captain, welfare officer,
membership secretary, newsletter editor, groundsman, librarian, social secretary, walks leader,
first-aid officer, safeguarding lead, equipment manager, minute-taker, webmaster, quartermaster,
seed steward, tool monitor, raffle organiser, events coordinator, team captain, vice-chair, archivist
""")

# kit people bring or are given
GEAR = _entries("""
ear defenders, crampons, hi-vis vest, head torch, hard hat, work gloves, wristband, lanyard, name badge,
clipboard, tabard, waterproofs, sun hat, sun cream, insect repellent, water bottle, packed lunch,
walking poles, gaiters, wellies, steel-capped boots, safety goggles, dust mask, knee pads, rubbish sacks,
litter picker, map, programme, float tin, cash box, rain poncho, folding chair, trestle table, gazebo,
bunting, cable reel, walkie-talkie, first-aid bag, foil blanket, spare socks, hand warmers, kneeling mat,
pen torch, ice axe, compass, hip flask, binoculars, bin liners, tarpaulin, raffle tickets, clicker counter,
lost-property book, megaphone, parking permit, meal voucher, drinks token, goggles, wetsuit, swim cap,
life jacket, helmet, bike lights, bell, whistle, armband, rosette, apron, oven gloves, tea towel,
padlock key, site plan, radio earpiece, cool bag, stopwatch, tally sheet, sash, fleece, cagoule
""")

# food people bring to share
FOODS = _entries("""
flapjacks, sausage rolls, scones, coleslaw, crisps, fruit salad, samosas, cheese straws, brownies,
rock cakes, hummus, pasta salad, potato salad, mince pies, shortbread, soup, fairy cakes, jam tarts,
egg sandwiches, cucumber sandwiches, pork pie, sausages, veggie burgers, watermelon, strawberries,
grapes, cherry tomatoes, pickles, olives, chutney, oatcakes, tea bags, milk, orange squash, lemonade,
ginger beer, carrot cake, lemon drizzle, banana bread, cheese scones, quiche, tortilla chips, salsa,
bread rolls, butter, flask of coffee, biscuits, gingerbread, apple crumble, custard, trifle, jelly,
rice salad, falafel, pakoras, spring rolls, chocolate fingers, parkin, bakewell tart, teacakes,
crumpets, cheese and crackers, sponge cake, fruit cake, malt loaf, sticky toffee pudding, dates
""")

# rooms and areas in and around public buildings: indoors (a wet-weather venue, a fault's site)
# and outdoors (parking, a meeting point)
INDOOR_PREMISES = _entries("""
boiler room, back stairwell, staff kitchen, plant room, main hall, changing rooms, upstairs toilets,
reception, first-floor landing, basement, roof space, music room, science lab, workshop, canteen,
meeting room, sports hall, church hall, scout hut, dining hall, chapel, visitor centre, orangery,
assembly hall, gym, games room, library annexe, art room, cloakroom, back office, store room, laundry,
drama studio, lecture theatre, foyer, mezzanine, goods lift, ground-floor corridor, staff room,
swimming pool, nursery building, portakabin, craft room, old schoolroom, youth wing, snooker room
""")
OUTDOOR_PREMISES = _entries("""
bike shed, bin store, marquee, bandstand, old barn, cricket pavilion, courtyard, walled garden, top field,
lower field, overflow car park, staff car park, playground, tennis courts, boathouse, tithe barn,
stable block, coach house, village green, market square, duck pond, picnic area, clock tower,
café terrace, kitchen garden, greenhouses, potting shed, allotment gate, football pitch, netball court,
sensory garden, loading dock, cycle store, covered walkway, war memorial, bus shelter, orchard,
bowling green, skate park, horse paddock, sundial, fountain, boules pitch, rose garden, lychgate
""")
PREMISES = INDOOR_PREMISES + OUTDOOR_PREMISES
ENTRANCES = _entries("""
side door, back gate, main gate, north gate, west entrance, front steps, service road, loading bay,
garden gate, turnstiles, revolving doors, ramp entrance, car park gate, courtyard door,
tradesmen's entrance, lower gate, upper gate, stable yard gate, east door, south porch, vestry door,
stage door, goods entrance, lodge gate, footpath gate, fire door by the kitchen, kissing gate,
double doors, tunnel entrance, river gate, orchard gate, staff entrance
""")

# where a walker notes things
HABITATS = _entries("""
reed beds, old orchard, footbridge, water meadow, beech wood, gravel pits, mill pond, bird hide, sea wall,
salt marsh, shingle bank, quarry edge, churchyard, allotments, canal towpath, railway cutting, heathland,
bracken slope, dry-stone wall, sheep field, oak wood, holly hedge, compost heap, village pond, stream,
ford, weir, lock gates, ploughed field, stubble field, cliff top, dunes, rock pools, estuary, mudflats,
hay meadow, wildflower strip, chalk pit, old railway line, copse, birch scrub, stepping stones,
ruined chapel, lime kiln, boggy corner, ridge path, sheepfold, pine plantation, cattle trough, village green
""")
BIRDS = _entries("""
heron, kestrel, barn owl, tawny owl, wren, robin, blackbird, song thrush, mistle thrush, chaffinch,
goldfinch, greenfinch, bullfinch, siskin, linnet, yellowhammer, skylark, meadow pipit, swallow,
house martin, swift, sand martin, kingfisher, dipper, grey wagtail, pied wagtail, lapwing, curlew,
redshank, oystercatcher, little egret, cormorant, great crested grebe, moorhen, coot, mallard, wigeon,
tufted duck, mute swan, buzzard, red kite, sparrowhawk, peregrine, jay, magpie, jackdaw, rook, nuthatch,
treecreeper, great spotted woodpecker, green woodpecker, long-tailed tit, blue tit, coal tit, chiffchaff,
blackcap, whitethroat, reed warbler, cuckoo, fieldfare, redwing, starling, stonechat, wheatear, snipe
""")
WILDLIFE = _entries("""
hare, fox, badger, hedgehog, stoat, weasel, mole, water vole, grey squirrel, red squirrel, otter,
pipistrelle, muntjac, roe deer, frog, toad, newt, grass snake, slow worm, adder, common lizard,
brimstone, peacock butterfly, orange-tip, red admiral, painted lady, dragonfly, damselfly, bumblebee,
stag beetle, glow-worm, field mouse, seal, harvest mouse, polecat
""")
WILDFLOWERS = _entries("""
bluebells, primroses, cowslips, wood anemones, celandines, snowdrops, foxgloves, cow parsley,
ox-eye daisies, red campion, meadowsweet, honeysuckle, dog roses, hawthorn blossom, blackthorn blossom,
elderflower, ragged robin, marsh marigolds, wild garlic, teasels, knapweed, scabious, harebells,
heather, gorse, bee orchids, yellow rattle, poppies, cornflowers, thistles, sloes, blackberries,
rosehips, hazel catkins, pussy willow, sea pinks, toadflax, speedwell, forget-me-nots, violets,
lady's smock, water mint, purple loosestrife, yarrow, tansy, wood sorrel
""")
WEATHER = _entries("""
drizzle, sleet, hail showers, sea fog, low cloud, thick mist, bright sunshine, heavy rain, thunder,
gales, light snow, sharp frost, biting wind, warm sunshine, steady rain, sunny spells, flat calm,
muggy heat, freezing fog, squally showers, hazy sun, blustery wind, clear skies, grey skies, light rain
""")

# durations, counts and clock times in words, the way prose writes them ("a fortnight", "half past
# eight"); the figures' forms are common in the other kinds already
_SMALL = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
DURATIONS = (["a fortnight", "half an hour", "an hour and a half", "a day and a half", "a week", "a month",
              "a whole morning", "an afternoon", "a long weekend", "ten minutes", "fifteen minutes",
              "twenty minutes", "forty minutes", "forty-five minutes", "twenty-five minutes", "an hour",
              "a quarter of an hour", "a couple of hours", "a couple of days", "three quarters of an hour"]
             + [f"{n} hours" for n in _SMALL] + [f"{n} days" for n in _SMALL] + [f"{n} weeks" for n in _SMALL[:6]]
             + [f"{n} months" for n in _SMALL[:5]])
_HOURS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
CLOCK_WORDS = ([f"{h} o'clock" for h in _HOURS] + [f"half past {h}" for h in _HOURS]
               + [f"quarter past {h}" for h in _HOURS] + [f"quarter to {h}" for h in _HOURS]
               + [f"ten past {h}" for h in _HOURS[::2]] + [f"twenty to {h}" for h in _HOURS[1::2]]
               + ["noon", "midday", "midnight"])
