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
