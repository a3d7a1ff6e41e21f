"""Two bots play the demo arena (`npm start`): python3 examples/arena_bot.py [ws://localhost:8080/]"""
import asyncio, random, sys
import volley

async def bot(url: str, name: str) -> None:
    done = asyncio.Event()
    handlers = {
        "chooseMove": lambda info: random.choice(["rock", "paper", "scissors"]),  # the server calls this
        "matchStart": lambda info: print(name, "plays", info["players"]),
        "roundResult": lambda r: print(name, "round", r["round"], "won by", r["winner"]),
        "matchEnd": lambda end: done.set(),
        "leaderboardChanged": lambda top: None,
    }
    async with volley.VolleyClient(url, token=name, handlers=handlers) as client:
        print(name, await client.call("whoami"), await client.call("queue"))
        await done.wait()
        print(name, "top 3:", await client.call("leaderboard", 3, timeout=5))

async def main(url: str) -> None:
    await asyncio.gather(bot(url, "alice"), bot(url, "bob"))

asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "ws://localhost:8080/"))
