import type { NewMovie } from './movie';

/**
 * Made-up but plausible movies for the seed and the benchmark: titles from a dozen patterns over
 * word lists and invented proper names (tens of thousands of distinct words, so searches have a
 * realistic long tail), descriptions of one to three template sentences. Deterministic for a
 * given seed, so two runs load the same catalogue.
 */

/** mulberry32: a tiny, fast, seedable PRNG; plenty for test data (not for anything secret). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ADJECTIVES = [
  'Silent', 'Crimson', 'Broken', 'Last', 'Hidden', 'Golden', 'Endless', 'Forgotten', 'Burning', 'Frozen',
  'Wild', 'Lonely', 'Secret', 'Dark', 'Bright', 'Hollow', 'Iron', 'Velvet', 'Bitter', 'Sweet', 'Quiet',
  'Savage', 'Electric', 'Midnight', 'Northern', 'Southern', 'Lost', 'Final', 'Little', 'Great', 'Strange',
  'Restless', 'Wicked', 'Gentle', 'Shattered', 'Eternal', 'Distant', 'Fading', 'Scarlet', 'Silver',
  'Neon', 'Paper', 'Glass', 'Stone', 'Blue', 'Black', 'White', 'Red', 'Green', 'Violet', 'Crooked',
  'Sleeping', 'Falling', 'Rising', 'Drowned', 'Haunted', 'Painted', 'Borrowed', 'Stolen', 'Sacred',
];
const NOUNS = [
  'River', 'Night', 'Summer', 'Winter', 'Storm', 'Kingdom', 'Garden', 'Empire', 'Shadow', 'Heart', 'Road',
  'Horizon', 'Harbor', 'Mountain', 'Island', 'Forest', 'City', 'Train', 'Letter', 'Promise', 'Mirror',
  'Dream', 'Witness', 'Stranger', 'Hunter', 'Daughter', 'Son', 'Mother', 'Father', 'Brother', 'Sister',
  'Queen', 'King', 'Soldier', 'Thief', 'Doctor', 'Pilot', 'Dancer', 'Painter', 'Ghost', 'Angel', 'Wolf',
  'Fox', 'Raven', 'Lion', 'Tiger', 'Whale', 'Horse', 'Dragon', 'Machine', 'Signal', 'Code', 'Protocol',
  'Frontier', 'Border', 'Desert', 'Ocean', 'Tide', 'Fire', 'Ash', 'Ember', 'Smoke', 'Thunder', 'Rain',
  'Snow', 'Moon', 'Sun', 'Star', 'Sky', 'Bridge', 'Tower', 'House', 'Room', 'Door', 'Window', 'Key',
  'Clock', 'Hour', 'Season', 'Year', 'Game', 'Secret', 'Lie', 'Truth', 'Memory', 'Silence', 'Song',
  'Ballad', 'Requiem', 'Symphony', 'Waltz', 'Heist', 'Job', 'Deal', 'Verdict', 'Affair', 'Escape',
];
const PLACES = [
  'Paris', 'Tokyo', 'Berlin', 'Lisbon', 'Havana', 'Cairo', 'Oslo', 'Marseille', 'Naples', 'Istanbul',
  'Bombay', 'Shanghai', 'Brooklyn', 'Harlem', 'Chicago', 'Texas', 'Montana', 'Alaska', 'Mars', 'Venus',
  'Atlantis', 'Avalon', 'Babylon', 'Tangier', 'Kyoto', 'Sarajevo', 'Valparaiso', 'Reykjavik', 'Dublin',
  'Glasgow', 'Memphis', 'Nashville', 'Detroit', 'Saigon', 'Casablanca', 'Vienna', 'Prague', 'Warsaw',
  'the North', 'the South', 'the Sea', 'the Moon', 'the Valley', 'the Hills', 'the Coast', 'the Deep',
];
const GERUNDS = [
  'Finding', 'Chasing', 'Saving', 'Killing', 'Becoming', 'Leaving', 'Remembering', 'Loving', 'Hunting',
  'Waiting for', 'Dancing with', 'Running from', 'Searching for', 'Escaping', 'Meeting', 'Burying',
];
const SUBTITLES = [
  'The Reckoning', 'The Awakening', 'The Return', 'Origins', 'Reborn', 'The Last Stand', 'Redemption',
  'The Beginning', 'The Final Chapter', 'Legacy', 'Revolution', 'Dawn', 'Resurrection', 'Aftermath',
];
const NUMBERS = ['Two', 'Three', 'Five', 'Seven', 'Nine', 'Twelve', 'Forty', 'Hundred', '12', '27', '99', '1000'];
const SEQUELS = [' II', ' III', ' IV', ' 2', ' 3', ' Returns', ': Part Two', ': Part Three', ' Reloaded'];

// Invented proper names, e.g. "Varnholt" or "Quinmere": about 27,000 combinations.
const NAME_START = [
  'Ka', 'Vor', 'El', 'Mar', 'Bel', 'Thra', 'Quin', 'Os', 'Ly', 'Dra', 'Fen', 'Ith', 'Mor', 'Sa', 'Val',
  'Zan', 'Cor', 'Hal', 'Ren', 'Tor', 'Gar', 'Ael', 'Bran', 'Cal', 'Dun', 'Ev', 'Gil', 'Jor', 'Kes', 'Lor',
];
const NAME_MIDDLE = ['', 'an', 'el', 'or', 'ri', 'va', 'th', 'ne', 'ro', 'li', 'sa', 'mo', 'du', 'ka', 'ze', 'ba', 'ir', 'ul', 'wy', 'ce'];
const NAME_END = [
  'holt', 'mere', 'dane', 'wick', 'ara', 'ion', 'eth', 'ova', 'ric', 'wyn', 'stead', 'gard', 'more', 'ton',
  'ia', 'us', 'en', 'ith', 'ane', 'ford', 'vale', 'ley', 'rin', 'ast', 'ora', 'ek', 'ux', 'ais', 'orn', 'ell',
  'ira', 'and', 'ost', 'ayne', 'ric', 'issa', 'el', 'yn', 'ard', 'oth', 'ine', 'ak', 'is', 'o', 'a',
];

const ROLES = [
  'detective', 'retired boxer', 'young pianist', 'smuggler', 'botanist', 'disgraced surgeon', 'taxi driver',
  'war photographer', 'schoolteacher', 'con artist', 'lighthouse keeper', 'astronaut', 'chef', 'hacker',
  'widowed farmer', 'teenage runaway', 'jazz singer', 'park ranger', 'forger', 'marine biologist',
  'small-town sheriff', 'ballet dancer', 'court stenographer', 'getaway driver', 'museum guard', 'priest',
];
const GOALS = [
  'uncover a conspiracy', 'find a missing brother', 'win back the family farm', 'pull off one last job',
  'clear an old friend\'s name', 'deliver a package across the border', 'survive a winter alone',
  'solve a string of impossible thefts', 'reunite a scattered family', 'protect a key witness',
  'repay a dangerous debt', 'stop a rogue satellite', 'save a failing restaurant', 'escape a sinking ship',
  'decode a dead man\'s diary', 'keep a promise made in wartime', 'expose a corrupt mayor', 'win the championship',
];
const DEADLINES = [
  'the storm hits', 'the festival ends', 'dawn', 'the election', 'the last train leaves', 'the tide turns',
  'winter sets in', 'the money runs out', 'the trial begins', 'the wedding', 'the city goes dark',
];
const EVENTS = [
  'a meteor lands in a quiet town', 'the power goes out across the city', 'a stranger arrives with a map',
  'an old letter resurfaces', 'the factory closes for good', 'a child goes missing at the fair',
  'a famous painting is stolen', 'the river floods the valley', 'a radio picks up a signal from nowhere',
];
const TONES = [
  'A tender, funny portrait of', 'A tense thriller about', 'A sweeping drama about', 'A quiet character study of',
  'A darkly comic tale of', 'A breathless chase through', 'An unflinching look at', 'A warm family story about',
];
const THEMES = [
  'grief and second chances', 'loyalty and betrayal', 'ambition', 'first love', 'the price of fame',
  'friendship across borders', 'guilt', 'the end of an era', 'what we owe our parents', 'survival',
];
const TIMEFRAMES = ['in the 1920s', 'during the war', 'in the near future', 'in the summer of 1969', 'today', 'a century from now'];

/** "a botanist", "an astronaut". */
function withArticle(word: string): string {
  return `${/^[aeiou]/i.test(word) ? 'an' : 'a'} ${word}`;
}

const IRREGULAR_PLURALS: Record<string, string> = { Wolf: 'Wolves', Thief: 'Thieves', Key: 'Keys', Son: 'Sons' };

function plural(noun: string): string {
  if (IRREGULAR_PLURALS[noun]) return IRREGULAR_PLURALS[noun];
  if (/(s|x|ch|sh)$/.test(noun)) return `${noun}es`;
  if (/[^aeiou]y$/.test(noun)) return `${noun.slice(0, -1)}ies`;
  return `${noun}s`;
}

export class FakeCatalog {
  private readonly random: () => number;

  constructor(seed = 1) {
    this.random = prng(seed);
  }

  private pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.random() * list.length)] as T;
  }

  private chance(p: number): boolean {
    return this.random() < p;
  }

  name(): string {
    return this.pick(NAME_START) + this.pick(NAME_MIDDLE) + this.pick(NAME_END);
  }

  private place(): string {
    return this.chance(0.4) ? this.name() : this.pick(PLACES);
  }

  title(): string {
    const r = this.random();
    let title: string;
    if (r < 0.14) title = `The ${this.pick(ADJECTIVES)} ${this.pick(NOUNS)}`;
    else if (r < 0.24) title = `${this.pick(NOUNS)} of ${this.place()}`;
    else if (r < 0.32) title = this.name();
    else if (r < 0.4) title = `${this.name()}'s ${this.pick(NOUNS)}`;
    else if (r < 0.47) title = `${this.pick(GERUNDS)} ${this.name()}`;
    else if (r < 0.54) title = `The ${this.pick(NOUNS)} from ${this.place()}`;
    else if (r < 0.61) title = `${this.pick(ADJECTIVES)} ${this.pick(NOUNS)}: ${this.pick(SUBTITLES)}`;
    else if (r < 0.67) title = `${this.pick(NUMBERS)} ${plural(this.pick(NOUNS))}`;
    else if (r < 0.73) title = `${withArticle(this.pick(NOUNS))} in ${this.place()}`.replace(/^a/, 'A');
    else if (r < 0.79) title = `${this.pick(NOUNS)} & ${this.pick(NOUNS)}`;
    else if (r < 0.85) title = `${this.pick(ADJECTIVES)} ${this.name()}`;
    else if (r < 0.9) title = `The ${this.name()} ${this.pick(NOUNS)}`;
    else if (r < 0.95) title = `${this.pick(NOUNS)} Without ${this.pick(NOUNS)}`;
    else if (r < 0.995) title = `${this.pick(ADJECTIVES)} ${this.pick(NOUNS)}`;
    // Rare titles with characters that are wildcards in LIKE, as real catalogues have.
    else if (r < 0.998) title = `100% ${this.pick(NOUNS)}`;
    else title = `${this.pick(NOUNS).toLowerCase()}_${this.name().toLowerCase()}`;
    if (this.chance(0.06)) title += this.pick(SEQUELS);
    if (this.chance(0.04)) title += ` (${1920 + Math.floor(this.random() * 106)})`;
    return title;
  }

  description(): string {
    const sentences: string[] = [];
    const r = this.random();
    if (r < 0.35) {
      sentences.push(`${this.name()}, ${withArticle(this.pick(ROLES))}, must ${this.pick(GOALS)} before ${this.pick(DEADLINES)}.`);
    } else if (r < 0.7) {
      sentences.push(`When ${this.pick(EVENTS)}, ${withArticle(this.pick(ROLES))} sets out to ${this.pick(GOALS)}.`);
    } else {
      sentences.push(`${this.pick(TONES)} ${this.pick(THEMES)}, set in ${this.place()} ${this.pick(TIMEFRAMES)}.`);
    }
    if (this.chance(0.6)) sentences.push(`${this.pick(TONES)} ${this.pick(THEMES)}.`);
    if (this.chance(0.3)) sentences.push(`Set in ${this.place()} ${this.pick(TIMEFRAMES)}.`);
    return sentences.join(' ');
  }

  movie(): NewMovie {
    return { title: this.title(), description: this.description() };
  }
}
