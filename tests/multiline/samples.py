"""Real-world multi-line samples (the shapes Fluent Bit's own tests use)."""

JAVA = [
    'Dec 14 06:41:08 Exception in thread "main" java.lang.RuntimeException: Something has gone wrong, aborting!',
    "    at com.myproject.module.MyProject.badMethod(MyProject.java:22)",
    "    at com.myproject.module.MyProject.oneMoreMethod(MyProject.java:18)",
    "    at com.myproject.module.MyProject.anotherMethod(MyProject.java:14)",
    "    at com.myproject.module.MyProject.someMethod(MyProject.java:10)",
    "    at com.myproject.module.MyProject.main(MyProject.java:6)",
    "Caused by: java.lang.IllegalStateException: bad state",
    "    at com.myproject.module.Helper.check(Helper.java:3)",
    "    ... 5 more",
]

PYTHON = [
    "Traceback (most recent call last):",
    '  File "/base/data/home/runtimes/python27/python27_lib/versions/third_party/webapp2-2.5.2/webapp2.py", line 1535, in __call__',
    "    rv = self.handle_exception(request, response, e)",
    '  File "/base/data/home/apps/s~nearfieldspy/1.378705245900539993/nearfieldspy.py", line 17, in start',
    "    return get()",
    '  File "/base/data/home/apps/s~nearfieldspy/1.378705245900539993/nearfieldspy.py", line 5, in get',
    "    raise Exception('spam', 'eggs')",
    "Exception: ('spam', 'eggs')",
]

GO = [
    "panic: my panic",
    "",
    "goroutine 4 [running]:",
    "panic(0x45cb40, 0x47ad70)",
    "\t/usr/local/go/src/runtime/panic.go:542 +0x46c fp=0xc42003f7b8 sp=0xc42003f710 pc=0x422f7c",
    "main.main.func1(0xc420024120)",
    "\tfoo.go:6 +0x39 fp=0xc42003f7d8 sp=0xc42003f7b8 pc=0x451339",
    "runtime.goexit()",
    "\t/usr/local/go/src/runtime/asm_amd64.s:2337 +0x1 fp=0xc42003f7e0 sp=0xc42003f7d8 pc=0x44b4d1",
    "created by main.main",
    "\tfoo.go:5 +0x58",
]

RUBY = [
    "/app/lib/foo.rb:12:in `bar': undefined method `baz' for nil:NilClass (NoMethodError)",
    "\tfrom /app/lib/foo.rb:20:in `run'",
    "\tfrom /app/bin/start:3:in `<main>'",
]

DOCKER = [
    '{"log":"one, ","stream":"stdout","time":"2021-02-01T01:40:03.53413Z"}',
    '{"log":"two, ","stream":"stdout","time":"2021-02-01T01:40:03.53414Z"}',
    '{"log":"three\\n","stream":"stdout","time":"2021-02-01T01:40:03.53415Z"}',
    '{"log":"single\\n","stream":"stderr","time":"2021-02-01T01:40:04.0Z"}',
]

CRI = [
    "2019-05-07T18:57:50.904275087+00:00 stdout P 1a. some ",
    "2019-05-07T18:57:51.904275088+00:00 stdout P multiline ",
    "2019-05-07T18:57:52.904275089+00:00 stdout F log",
    "2019-05-07T18:57:53.904275090+00:00 stderr F another log",
]
