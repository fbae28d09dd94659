/* lua_bench.c -- benchmark workload: our driver embedding Lua 5.4 (sources
 * from the lua-src crate, built exactly like lua_main). Runs the script
 * below with the global SCALE set; each part's work is proportional to it:
 *  - integer loops and arithmetic (a LCG, modular sums, bit operations),
 *  - arrays: fill, table.sort (default and with a comparator), prefix sums,
 *  - hash tables: counting string keys, iterating sorted keys,
 *  - strings: string.format, table.concat, gsub/gmatch/find, string.rep,
 *  - closures and upvalues, varargs, metatables (__add, __index, __lt),
 *  - floating point: a Mandelbrot escape-count grid (counts are integers).
 * Prints checksums as integers. Built with lua-wasi/lua_wasi.h force-included:
 * there is no setjmp in this wasi-libc, so the script raises no errors and
 * uses no coroutines.
 *   lua_bench.wasm [SCALE]   (default 1). Exits 0 (1 on a Lua error). */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"
#include "lua_driver.h"


static const char *script =
    "local N = SCALE\n"
    "print(string.format('lua_bench scale=%d', N))\n"
    "\n"
    "-- integer loops\n"
    "local seed = 42\n"
    "local function rnd(m) seed = (seed * 6364136223846793005 + 1442695040888963407); return (seed >> 33) % m end\n"
    "local acc, x = 0, 0\n"
    "for i = 1, 50000 * N do\n"
    "  x = (x * 31 + i) % 1000003\n"
    "  acc = acc ~ (x << (i % 17))\n"
    "  if x % 3 == 0 then acc = acc + i else acc = acc - (i // 3) end\n"
    "end\n"
    "print('loops: ' .. acc .. ' ' .. x)\n"
    "\n"
    "-- arrays and sorting\n"
    "local a = {}\n"
    "for i = 1, 2000 * N do a[i] = rnd(100000) end\n"
    "local b = {}\n"
    "for i = 1, #a do b[i] = a[i] end\n"
    "table.sort(a)\n"
    "table.sort(b, function(p, q) if p % 1000 ~= q % 1000 then return p % 1000 < q % 1000 end return p > q end)\n"
    "local s1, s2, prefix = 0, 0, 0\n"
    "for i = 1, #a do prefix = prefix + a[i]; s1 = (s1 + prefix * i) % 2147483647; s2 = (s2 * 7 + b[i]) % 2147483647 end\n"
    "print('sort: ' .. a[1] .. ' ' .. a[#a] .. ' ' .. s1 .. ' ' .. s2)\n"
    "\n"
    "-- hash tables with string keys\n"
    "local counts, distinct = {}, 0\n"
    "for i = 1, 6000 * N do\n"
    "  local k = 'key' .. rnd(3000)\n"
    "  local c = counts[k]\n"
    "  if c then counts[k] = c + 1 else counts[k] = 1; distinct = distinct + 1 end\n"
    "end\n"
    "local keys = {}\n"
    "for k in pairs(counts) do keys[#keys + 1] = k end\n"
    "table.sort(keys, function(p, q) if counts[p] ~= counts[q] then return counts[p] > counts[q] end return p < q end)\n"
    "print('hash: ' .. distinct .. ' ' .. keys[1] .. '=' .. counts[keys[1]] .. ' ' .. keys[#keys] .. '=' .. counts[keys[#keys]])\n"
    "\n"
    "-- strings\n"
    "local parts = {}\n"
    "for i = 1, 1500 * N do parts[#parts + 1] = string.format('%05d:%x;', rnd(100000), i) end\n"
    "local big = table.concat(parts)\n"
    "local digits = select(2, big:gsub('%d', ''))\n"
    "local nsemi, firstpos = 0, big:find('99', 1, true)\n"
    "for field in big:gmatch('(%d+):') do if field:sub(1, 1) == '7' then nsemi = nsemi + 1 end end\n"
    "local up = big:sub(1, 40):upper():rep(3, '|')\n"
    "print('strings: ' .. #big .. ' ' .. digits .. ' ' .. nsemi .. ' ' .. tostring(firstpos) .. ' ' .. #up)\n"
    "local words = {}\n"
    "for i = 1, 700 * N do words[i] = string.char(97 + rnd(26), 97 + rnd(26), 97 + rnd(26)) end\n"
    "local sentence = table.concat(words, ' ')\n"
    "local nrep = 0\n"
    "local replaced = sentence:gsub('(%a)(%a)(%a)', function(p, q, r) if p == r or q == 'e' then nrep = nrep + 1; return r .. q .. p end end)\n"
    "local h = 0\n"
    "for i = 1, #replaced, 7 do h = (h * 131 + replaced:byte(i)) % 4294967296 end\n"
    "print('gsub: ' .. nrep .. ' ' .. h)\n"
    "\n"
    "-- closures, varargs\n"
    "local function make_counter(step)\n"
    "  local n = 0\n"
    "  return function(k) n = n + step * (k or 1); return n end\n"
    "end\n"
    "local fns, total = {}, 0\n"
    "for i = 1, 100 do fns[i] = make_counter(i) end\n"
    "for r = 1, 200 * N do local f = fns[(r % 100) + 1]; total = total + f(r % 5) end\n"
    "local function sum(...) local t = 0; for i = 1, select('#', ...) do t = t + (select(i, ...)) end; return t end\n"
    "for r = 1, 1000 * N do total = total + sum(r, r % 7, 3, r // 11) end\n"
    "print('closures: ' .. total)\n"
    "\n"
    "-- metatables\n"
    "local V = {}\n"
    "V.__index = V\n"
    "V.__add = function(p, q) return setmetatable({ x = p.x + q.x, y = p.y + q.y }, V) end\n"
    "V.__lt = function(p, q) return p:len2() < q:len2() end\n"
    "function V.new(x, y) return setmetatable({ x = x, y = y }, V) end\n"
    "function V:len2() return self.x * self.x + self.y * self.y end\n"
    "local pos, far = V.new(0, 0), V.new(0, 0)\n"
    "for i = 1, 3000 * N do\n"
    "  pos = pos + V.new(rnd(21) - 10, rnd(21) - 10)\n"
    "  if far < pos then far = pos end\n"
    "end\n"
    "print('vectors: ' .. pos.x .. ',' .. pos.y .. ' ' .. far:len2())\n"
    "\n"
    "-- floating point: Mandelbrot escape counts\n"
    "local iters = 0\n"
    "local rows = 8 * N\n"
    "for row = 0, rows - 1 do\n"
    "  local ci = -1.25 + 2.5 * ((row % 24) + 0.5) / 24 + (row // 24) * 1e-3\n"
    "  for col = 0, 47 do\n"
    "    local cr = -2.0 + 2.5 * (col + 0.5) / 48\n"
    "    local zr, zi, k = 0.0, 0.0, 0\n"
    "    while k < 64 and zr * zr + zi * zi <= 4.0 do\n"
    "      zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci\n"
    "      k = k + 1\n"
    "    end\n"
    "    iters = iters + k\n"
    "  end\n"
    "end\n"
    "print('mandelbrot: ' .. iters)\n"
    "collectgarbage()\n"
    "print('lua_bench: done')\n";

int main(int argc, char **argv) {
    long scale = bench_scale(argc, argv, "lua_bench");
    return mvvm_lua_run(script, (lua_Integer)scale);
}
