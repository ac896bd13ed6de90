/**
 * The sandbox process's warm-up bundle (sandbox-main.ts warmUp), with its conversion to a
 * script written out: a sandbox process runs no esbuild (the host sends each bundle's
 * conversion with its source), so nothing in it can make this one.
 */
import type { Converted } from '../script-form.ts';

/** The bundle a sandbox process launches and calls once before it says `ready` (sandbox-main.ts warmUp). */
export const WARM_UP_SOURCE = 'export function warm(a) { return a; }\n';

/**
 * What esbuild makes of WARM_UP_SOURCE (script-form.ts convert(); a test holds the two
 * equal), written out so that the warm-up starts no esbuild either: a sandbox process
 * gets every bundle's conversion from the host with its source.
 */
export const WARM_UP_CONVERTED: Converted = Object.freeze({
  code: `var __defProp = Object.defineProperty;
var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __hasOwnProp = Object.prototype.hasOwnProperty;
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};
var __copyProps = (to, from, except, desc) => {
  if (from && typeof from === "object" || typeof from === "function") {
    for (let key of __getOwnPropNames(from))
      if (!__hasOwnProp.call(to, key) && key !== except)
        __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
  }
  return to;
};
var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);
var app_exports = {};
__export(app_exports, {
  warm: () => warm
});
module.exports = __toCommonJS(app_exports);
function warm(a) {
  return a;
}
`,
  mappings: ';;;;;;;;;;;;;;;;;AAAA;AAAA;AAAA;AAAA;AAAA;AAAO,SAAS,KAAK,GAAG;AAAE,SAAO;AAAG;',
});
