"""GPT4Tools web demo: chat with an LLM that uses visual tools on your images.

Examples (see docs/demo.md)::

    python gpt4tools.py                                   # published Vicuna-13B + GPT4Tools LoRA
    python gpt4tools.py --base_model /models/vicuna-13b-v1.1 --lora_model /models/gpt4tools-lora \\
        --llm_device cuda:0 --load "ImageCaptioning_cuda:0,Image2Canny_cpu"
    python gpt4tools.py --openai_base_url http://localhost:8000/v1 --openai_model NAME
    python gpt4tools.py --mcp --load "Image2Canny_cpu,CropImage_cpu"  # the tools as an MCP server (docs/mcp.md)
"""

from g4t.demo_config import parse_demo_args

if __name__ == "__main__":
    cfg = parse_demo_args()
    if cfg.mcp:
        from g4t.mcp_server import main
    else:
        from g4t.app import main
    main(cfg)
