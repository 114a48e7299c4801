// The help texts of the `guidekit` CLI.
import { guidanceHelp, samplerHelp } from '@guidekit/grammar'
import { VERSION } from './metadata.js'

const EXIT_CODES = `Exit codes:
  0    success
  1    unexpected failure (a bug, a model that fails while running)
  2    bad input: arguments, --guidance syntax or a guidance value that makes sampling diverge,
       unknown model/class, invalid model card, corrupt ONNX, unwritable or existing --out
  130  interrupted (SIGINT, Ctrl-C); 143 terminated (SIGTERM): no partial file is left behind`

const MODEL_HELP = `Model and sampling (defaults: what the model's card recommends in "defaults", for diffusers folders
the scheduler config, else the values below):
  --model <m>            a name from @guidekit/models-fashion: fashion-dit (default), fashion-unet, fashion-dit-rl,
                         fashion-sd (text-to-image, where shipped); a class-conditional <name>.onnx or
                         <name>.card.json, a text-to-image card, or a diffusers SD ONNX folder (model_index.json, unet/, ...)
  --precision <p>        fp32 | int8 | fp16: a reduced-precision variant (<name>-int8.card.json next to the card);
                         default: the fastest variant that passed its quality gate, else the model itself
  --rl-model <m>         RL-fine-tuned model for rlg (default: <name>-rl.card.json next to the model's card)
  --class <c>[,<c>...]   class names or indices (class-conditional models), cycled over the images; default: all
  --prompt <text>        prompt (text-to-image); on class-conditional models, a class name
  --negative-prompt <t>  negative prompt (text-to-image)
  --sampler <s>          euler, euler-a[:eta=N], ddim[:eta=N], dpmpp-2m, flow-euler (built-in default: euler;
                         diffusers folders: their scheduler's, when guidekit has it)
  --steps <n>            sampling steps, 1..1000 (built-in default 30; diffusers folders 50)
  --spacing <s>          leading | trailing | linspace: VP timestep spacing (built-in default linspace)
  --karras               Karras sigmas (VP models)
  --seed <n>             first seed, 0..4294967295; image i uses seed + i (default 0)
  --attention <a>        dense (default) or draft[:keep=0.25,dense-steps=0.3,dense-layers=0,window=2x2,selection=row-topk] (DiT models)
  --threads <n>          threads for the model (default: all cores; images are the same for any value)
  --size <W>x<H>         image size for text-to-image models (default: the UNet's, else 512x512)
  --overwrite            replace existing output files (default: refuse, and name files by their settings)
  --unbatched            one model run per branch instead of one per model (to measure batching)
  --json                 print a machine-readable summary on stdout
  -q, --quiet            only errors on stderr (no progress, notes or warnings)
  -h, --help             this help`

const GUIDANCE_GRAMMAR = `Guidance grammar (--guidance):
  name                         defaults, e.g. cfg
  name:key=value,key=value     e.g. apg:scale=8,eta=0,momentum=-0.5
  name(key=value,...)          the same, for nesting
  combinator(params):inner     adaptive, rlg and interval wrap another guider, e.g.
                               adaptive(threshold=0.99):apg(scale=8,eta=0)
                               rlg:scale=1.5,inner=cfg:scale=3   (= rlg(scale=1.5):cfg(scale=3))
                               interval(sigma=0.2..0.8):cfg(scale=4)
  linear-ag:coefficients=f.json  LinearAG with coefficients from guidekit fit-linear-ag
  spec; spec; ...              several strategies (grid rows)
Keys may be kebab-case or camelCase (norm-threshold = normThreshold); ranges are a..b (b may be inf).

Strategies:
${guidanceHelp()}

Samplers:
${samplerHelp()}`

export const MAIN_HELP = `guidekit ${VERSION}: generate images with composable diffusion guidance.

Usage:
  guidekit generate [options]   write PNGs (parameters embedded as PNG text, A1111 convention)
  guidekit grid [options]       a labelled contact sheet: rows = strategies, columns = seeds
  guidekit fit-linear-ag [opts] record CFG trajectories and fit LinearAG coefficients (for linear-ag:coefficients=...)
  guidekit help [command]

Quick start (in the repository: pnpm guidekit ...):
  guidekit generate --class sneaker --guidance apg:scale=5 --count 4 --out out/
  guidekit grid --out out/grid.png

Run "guidekit <command> --help" for the options and the guidance grammar.

${EXIT_CODES}`

export const GENERATE_HELP = `Usage: guidekit generate [options]

Generates --count images (one batch per --batch-size) and writes one PNG each. Each PNG carries the
full parameters in a tEXt chunk named "parameters" (A1111 convention) and a "guidekit" JSON chunk with
the command that reproduces it.

Options:
  --guidance <spec>      one guidance strategy (default: the model's recommended guidance, else cfg:scale=3)
  --count <n>            images, 1..1000 (default 1)
  --batch-size <n>       images per model batch, 1..256 (default: min(count, 8); images are the same for any value)
  --out <path>           a folder (default out/) or a file name ending in .png (with --count > 1, -<seed> is added).
                         In a folder, files are named <model>-<class>-<guidance>-<sampler>-<steps>-s<seed>-<hash>.png,
                         the hash covering every other setting, so different settings never share a name
  --upscale <n>          nearest-neighbour upscale of the written PNGs, 1..16 (default 1)
${MODEL_HELP}

${GUIDANCE_GRAMMAR}

${EXIT_CODES}`

export const GRID_HELP = `Usage: guidekit grid [options]

A contact sheet comparing guidance strategies on the same seeds and classes: one row per strategy,
one column per seed, each row labelled with its spec, its NFE per image and seconds per image.

Options:
  --guidance <specs>     ';'-separated strategies, or repeat --guidance (default: none; the model's recommended
                         guidance (cfg:scale=3); cfg++:scale=0.6; apg:scale=5,eta=0,momentum=-0.5;
                         adaptive(threshold=0.999):apg(...); rlg(scale=1.5):<recommended>, the rlg row only when
                         an RL model exists)
  --columns <n>          seeds per row, 1..16 (default 4)
  --out <path>           a .png file, or a folder for grid-<model>-<sampler>-<steps>-s<seed>-<hash>.png (default out/)
  --cell <px>            minimum cell size in pixels, 8..1024; small images are upscaled (default 96)
${MODEL_HELP}

${GUIDANCE_GRAMMAR}

${EXIT_CODES}`

export const FIT_HELP = `Usage: guidekit fit-linear-ag [options]

Samples --count images with plain CFG at --scale, records the conditional and unconditional predictions
of every step, and fits LinearAG's per-step coefficients (Castillo et al., arXiv 2312.12487): on every
other step the unconditional branch is then predicted from the previous step's branches, saving about a
quarter of the network evaluations. Use the file with --guidance linear-ag:coefficients=<file>, with the
same model, sampler and --steps.

Options:
  --scale <w>            paper CFG scale of the recorded trajectories and of the guider, 0..1000 (default 3)
  --space <s>            epsilon (default) or x0: where the regression runs
  --count <n>            trajectories (images) to fit on, 2..4096 (default 32)
  --batch-size <n>       images per model batch, 1..256 (default 8)
  --out <path>           a .json file, or a folder for linear-ag-<model>-<sampler>-<steps>-<hash>.json (default out/)
${MODEL_HELP}

${EXIT_CODES}`
