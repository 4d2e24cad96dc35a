// placeholder: filled in by the work on issue 16
#pragma once
